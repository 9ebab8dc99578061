"""email_summarizer service."""
