"""Korean Voice Q&A: speech in, Korean answer out, conversation kept."""
