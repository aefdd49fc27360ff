from docsynth.cli import main

main()
