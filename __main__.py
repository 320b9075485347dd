"""databricks-braintrust: one stack per environment (see README.md)."""

from components.program import run

run()
