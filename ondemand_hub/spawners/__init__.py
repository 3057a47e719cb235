"""JupyterHub spawners: the PUN spawner (every user's default server)."""
