"""The tokenizer choice: character level over a small alphabet (the board's rkfw.infer.Tokenizer does the
encoding; this module holds the default alphabet and the measurement against a small BPE)."""

# id 0 = unknown, 1..len = these characters (input is lowercased), len+1 = SEP
ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789'%:.,?!-"
