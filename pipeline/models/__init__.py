"""The models: networks, training data access (banks, batches), training loops and the training stages."""
