"""Pure image logic: face-to-ID match, liveness, document detection and quality, ID numbers.

No network, no database, no files except what a CLI is given.
"""
