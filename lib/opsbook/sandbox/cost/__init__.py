"""The sandbox's bill: the generated CUR and the Cost Explorer, Pricing and Athena emulators."""
