"""Device drivers: one package per device kind (protocol codec, driver over an injected
transport, simulator over a pseudo-terminal). Imports nothing from the rest of the product.
The device kinds arrive with the device-layer issue."""
