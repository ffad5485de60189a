"""Project-level test configuration: the lab tests need root and the lab's system tools."""
