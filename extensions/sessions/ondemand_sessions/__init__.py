"""ondemand_sessions: interactive apps, "My sessions", active jobs and the job composer (issue 4).

Only the package exists so far; it registers no pages until it has real ones.
"""
