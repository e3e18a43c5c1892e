"""asv's benchmark_dir: asv requires it to be a package. benchmarks.py holds every benchmark."""
