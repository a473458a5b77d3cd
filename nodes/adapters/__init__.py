"""Model adapters: which blocks each family has (``families``), how a block's branches are recomputed at the
modules level (``module_adapters``), and the ``patches_replace`` block replacements every block level shares
(``block_hooks``)."""
