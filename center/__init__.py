"""The provincial center (省级平台): a separate product from the site appliance, deployed at the
province. It receives the venues' journals and footage, sends them their feed, and serves the
province's pages (docs/center.md). It imports only the protocol pieces both sides share."""
