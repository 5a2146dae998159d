"""What a request leaves behind: its log line, its EMF metrics, X-Ray subsegments, and the timing
of each AWS call."""
