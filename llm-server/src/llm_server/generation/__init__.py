"""The protocol-free generation service: readiness, the model, jobs run as streams, metrics."""
