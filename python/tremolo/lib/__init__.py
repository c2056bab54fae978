"""The original Tremolo's module paths (`tremolo.lib.websocket`, ...), for programs
written for it that import from them. Each module names what tremolo has in their
place; see docs/differences.md for what is not there."""
