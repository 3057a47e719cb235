"""ondemand_files: the file explorer and editor extension (issue 3).

Only the package exists so far; it registers no pages until it has real ones.
"""
