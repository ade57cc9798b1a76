"""`python -m voiceqna.convert`: the stable command for converting a Whisper checkpoint to CTranslate2.

The work is done by voiceqna.evaluation.convert (run here by name, so the runtime package never
imports the evaluation tooling); this module only gives it a short, lasting name. Needs
requirements-convert.txt.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("voiceqna.evaluation.convert", run_name="__main__", alter_sys=True)
