"""Event-camera (DVS) input: readers and writers, preprocessing (paper section 4.5), synthetic events.

Events everywhere are NumPy structured arrays of ``EVENT_DTYPE``: x, y (pixels), t (microseconds,
non-decreasing), p (polarity: 0 = OFF, 1 = ON). See docs/events.md.
"""
from .readers import EVENT_DTYPE, check_events, read_events, write_events  # noqa: F401
