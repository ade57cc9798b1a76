"""Placeholder: word and character error rates of the recognizer on Bingsu/zeroth-korean.

The evaluation issue (#5) fills this in; until then it exits with a message.
"""

import sys

if __name__ == "__main__":
    sys.exit("evaluate.py is not written yet (issue #5).")
