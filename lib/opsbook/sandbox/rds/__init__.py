"""RDS data plane of the sandbox: the real MariaDB behind a proxy per moto RDS instance."""
