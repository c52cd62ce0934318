"""The identity service: users, projects, roles, tokens and revocations."""
