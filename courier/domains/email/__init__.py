"""Email: drafts and sends (``user-emails``), attachments (``user-email-attachments``),
delivery status mirrored from the generic delivery machine, bounces."""
