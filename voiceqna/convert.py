"""`python -m voiceqna.convert`: the stable command for converting a Whisper checkpoint to CTranslate2.

The work is done by voiceqna.evaluation.convert (also what finetune.py converts with); this
module only gives it a short, lasting name. Needs requirements-convert.txt.
"""

import sys

from voiceqna.evaluation.convert import main

if __name__ == "__main__":
    sys.exit(main())
