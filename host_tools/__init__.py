"""Host-side tools of tinyseg-mp: import, analyse, plan and compile models."""
