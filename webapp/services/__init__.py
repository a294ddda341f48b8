"""Business logic: explicit arguments in, models or dataclasses out, domain errors raised."""
