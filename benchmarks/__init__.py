"""mqkit's benchmarks: ``python -m benchmarks`` runs them side by side (sidebyside.py);
each ``bench_<name>.py`` still runs alone as a script."""
