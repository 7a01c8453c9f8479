"""Observe and adopt: status of the estate, import of existing enrollments, hand-work exports."""
