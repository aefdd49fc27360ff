"""The write stage: filters, injection checks, verdicts, its decontamination step and the card."""
