"""External systems behind typed Protocols, each with a sandbox twin (ARCHITECTURE.md)."""
