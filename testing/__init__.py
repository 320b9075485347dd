"""What tests and benchmarks share to stand in for the Pulumi engine: the emulator's admin
client (`testing.emulator`), the provider process driven over gRPC (`testing.provider`), and
the real program in the loop (`testing.engine`). Importable by `tests/` and `bench/`;
`components/` and `emulator/` never import it."""
