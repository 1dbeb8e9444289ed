"""`gllm start-cluster`: a balancer and its workers on one machine, started, supervised and stopped together."""
