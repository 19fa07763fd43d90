"""The standing adversarial and fault suite (issue 12)."""
