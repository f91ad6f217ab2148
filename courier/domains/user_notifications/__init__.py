"""User notifications: templated notifications of individuals, their deliveries and
escalation ladders."""
