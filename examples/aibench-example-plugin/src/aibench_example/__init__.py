"""An example aibench plugin (docs/extending.md): the `stream` suite and the
`reduce-bcast` impl of the interconnect suite."""
