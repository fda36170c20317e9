"""The screens: associations (main), ladder, findings, and the modal ones."""
