"""Site configuration shared by the hub and the extensions: drop-in files parsed into
validated objects (announcements, message of the day, ...)."""
