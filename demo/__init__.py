"""Demo data for `make run`: one module per area, loaded by demo.loader.demo_load (the demo_data command)."""
