"""Where the jobs extension's packaged templates, static files and bundled job templates are."""

import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
TEMPLATES_DIR = os.path.join(PACKAGE_DIR, "templates")
STATIC_DIR = os.path.join(PACKAGE_DIR, "static")
#: The composer's bundled job templates (``<name>/manifest.yml`` and its script).
BUNDLED_JOB_TEMPLATES_DIR = os.path.join(PACKAGE_DIR, "job_templates")
