"""cps-reconciler: GitOps for Akamai CPS certificate enrollments."""

__version__ = "0.1.0"
