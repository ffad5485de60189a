"""Reports: JUnit properties, terminal summary, JSON results, pytest-html extras."""
