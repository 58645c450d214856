"""AWS in the sandbox: moto in server mode, its seed, and the Service Quotas emulator."""
