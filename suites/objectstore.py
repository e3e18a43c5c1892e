"""asv benchmarks of the objectstore suite: `asv run` measures the same cases as
`aibench run --suite objectstore` (awscrt, obstore, boto3) against the embedded local S3
endpoint, under the same names aibench records in results/."""

from aibench.asv_benchmarks import asv_class

ObjectStore = asv_class("objectstore")
