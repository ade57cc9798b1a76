"""The engines, one file each, named by stage: asr_*, chat_*, tts_*, store_*.

Each implements a Protocol of `voiceqna.ports` and has `build(settings)`; `voiceqna.registry`
lists them. Nothing here imports the service or a front door.
"""
