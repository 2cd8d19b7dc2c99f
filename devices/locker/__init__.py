"""Code-locked storage lockers (密码存储柜) on two common lock-control-board families:
Kerong CU-style boards (``02 ADDR CMD 03 SUM``, 19200 8N1) and the widespread "8A/80" boards
(``HDR BOARD LOCK FUNC XOR``, 9600 8N1). ``protocol`` holds both codecs, ``client`` the
request/read-back logic and door-left-open detection, ``sim`` a board of each family."""
