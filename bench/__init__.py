"""Benchmarks against the emulator and the real provider process; see bench/README.md."""
