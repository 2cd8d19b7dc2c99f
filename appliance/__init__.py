"""Site appliance for a county public resource trading venue (县级公共资源交易中心).

The domain lives here: the store, the signed journal, personal data handling, configuration,
the composition root and the command line.
"""

__version__ = "0.1.0"
