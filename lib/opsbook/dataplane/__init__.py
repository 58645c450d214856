"""Data plane probes: MySQL (canaries, counts, checksums, probe) and RabbitMQ."""
