"""Voice broadcast (语音广播): offline Mandarin text-to-speech, pre-recorded clips and a chime,
played through one priority queue to an ALSA device, IP speakers (RTP G.711) or a file."""
