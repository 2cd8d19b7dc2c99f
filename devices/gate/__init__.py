"""Access gates (闸机) driven through a Modbus RTU relay module (pymodbus, pinned).

``protocol`` — the relay module's register map and the timed-pulse ("flash on") request;
``driver`` — open the gate, read back, watch the passage and alarm inputs; ``sim`` — a real
pymodbus server on a pseudo-terminal plus a simulated turnstile.
"""
