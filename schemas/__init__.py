"""The Avro contracts: pydantic models, the generated .avsc files, and the registry serde."""
