"""Version-neutral domain services; ocpp16/ and ocpp201/ translate messages into these."""
