"""The CPS room: the only code that speaks HTTP to CPS.

``client.CpsClient`` is the entry point; ``credentials`` loads ``.edgerc``, ``auth`` signs requests
with edgegrid-python, ``models`` holds the wire shapes, ``media`` the versioned media types. This
package module imports nothing on purpose, so that ``reconciler.cps.mapping`` stays cheap to import.
"""
